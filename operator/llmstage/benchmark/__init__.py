"""`llmstage benchmark`: GuideLLM against a served LLMService, its result, its knee and what it means
for the runtime decision and the promotion (docs/benchmarks.md).

guidellm_report and sweep run inside the benchmark image with the standard library only: this
package file imports nothing.
"""
