// Command adapter-rules-check loads a prometheus-adapter configuration file the way the adapter
// does at start-up (config.FromFile: strict YAML, unknown fields are errors), compiles every rule
// with the adapter's own code (naming.NamersFromConfig: name regexes, series filters, the
// metricsQuery template, resource overrides), and shows what the adapter would make of one series:
// the metric name in the custom metrics API and the PromQL it runs for pods of a namespace.
//
//	go run . FILE SERIES NAMESPACE POD
//
// Prints JSON {"rules": N, "names": [...], "queries": [...]}, one entry per rule whose filters
// accept SERIES; exits 1 with the adapter's error otherwise.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	prom "sigs.k8s.io/prometheus-adapter/pkg/client"
	"sigs.k8s.io/prometheus-adapter/pkg/config"
	"sigs.k8s.io/prometheus-adapter/pkg/naming"
)

// The resources a rule may name, as the API server's discovery would map them.
func mapper() meta.RESTMapper {
	m := meta.NewDefaultRESTMapper(nil)
	m.Add(schema.GroupVersionKind{Version: "v1", Kind: "Namespace"}, meta.RESTScopeRoot)
	m.Add(schema.GroupVersionKind{Version: "v1", Kind: "Pod"}, meta.RESTScopeNamespace)
	m.Add(schema.GroupVersionKind{Version: "v1", Kind: "Service"}, meta.RESTScopeNamespace)
	m.Add(schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, meta.RESTScopeNamespace)
	return m
}

func check(file, series, namespace, pod string) (map[string]any, error) {
	cfg, err := config.FromFile(file)
	if err != nil {
		return nil, err
	}
	namers, err := naming.NamersFromConfig(cfg.Rules, mapper())
	if err != nil {
		return nil, err
	}
	names, queries := []string{}, []string{}
	for _, n := range namers {
		if len(n.FilterSeries([]prom.Series{{Name: series}})) == 0 {
			continue
		}
		name, err := n.MetricNameForSeries(prom.Series{Name: series})
		if err != nil {
			return nil, err
		}
		query, err := n.QueryForSeries(series, schema.GroupResource{Resource: "pods"}, namespace, labels.Everything(), pod)
		if err != nil {
			return nil, err
		}
		names, queries = append(names, name), append(queries, string(query))
	}
	return map[string]any{"rules": len(cfg.Rules), "names": names, "queries": queries}, nil
}

func main() {
	if len(os.Args) != 5 {
		fmt.Fprintln(os.Stderr, "usage: adapter-rules-check FILE SERIES NAMESPACE POD")
		os.Exit(2)
	}
	out, err := check(os.Args[1], os.Args[2], os.Args[3], os.Args[4])
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
	_ = json.NewEncoder(os.Stdout).Encode(out)
}
