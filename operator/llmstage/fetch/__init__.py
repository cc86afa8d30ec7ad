"""The model download step of spec.model.source s3 and gcs (and spec.lora.adapters[].source).

Not imported by the operator: the vLLM Deployment runs it as an init container in the operator's
own image (`python -m llmstage.fetch`), where botocore and requests are installed from the same
hashed lock as the operator (requirements/runtime.txt), and google-auth from its own
(requirements/gcs.txt) into a directory that only gcs.py puts on sys.path. Not in the vLLM
image: neither vllm/vllm-openai-cpu:v0.32.0 (docker/Dockerfile.cpu installs vLLM's wheel with its
audio and bench extras only) nor the real node's image has an S3 or GCS client, and the GPU
image's (boto3 through runai-model-streamer[s3,gcs,azure], docker/Dockerfile of 0.32.0) is
unpinned.

    settings.Source       where to read (LLMSTAGE_SOURCE_* variables) and where to write
    s3.S3Store            S3 and S3-compatible stores, and GCS's XML API with HMAC keys (botocore)
    gcs.GCSStore          GCS's JSON API with google-auth's credential chain (key or federation
                          file, gcloud's credentials, Workload Identity), else anonymous
    transfer.download     every object under the prefix into the directory vLLM reads: resumed
                          where a body breaks, checked against the object's checksum or ETag
"""
