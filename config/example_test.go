package config_test

import (
	"fmt"

	"github.com/nopii/nopii/config"
)

func ExampleParse() {
	file := []byte(`version: 1
workflows:
  - name: ml
    inputs:
      - name: prod
        dsn: ${PROD_DATABASE_URL}
        tables:
          - name: customer
            mode: incremental
    feeds:
      - type: twin
        bucket: lake
`)
	env := map[string]string{"PROD_DATABASE_URL": "postgres://reader:secret@prod/app"}
	_, err := config.Parse("nopii.yaml", file, config.Options{
		Getenv:   func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		Hostname: func() (string, error) { return "example-host", nil },
	})
	fmt.Println(err)
	// Output:
	// nopii.yaml:8:19: workflows[0].inputs[0].tables[0].name: table name must be schema-qualified, e.g. public.customer
	// nopii.yaml:9:19: workflows[0].inputs[0].tables[0].mode: "incremental" is not a mode (expected full, delta or cdc)
	// nopii.yaml:11:9: workflows[0].feeds[0].dsn: required: the twin database's connection string, e.g. ${TWIN_DATABASE_URL}
	// nopii.yaml:12:9: workflows[0].feeds[0].bucket: bucket is not a key of a twin feed (twin feeds take: type, dsn, schema, lock_timeout)
}
