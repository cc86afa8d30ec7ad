"""How llmstage reaches the Kubernetes API without the generated kubernetes client.

The operator and the CLI send and read raw JSON on a fixed set of kinds, so the generated client
(about 1,400 modules, 125 MB of the image's venv and 46 MiB of the idle operator's memory) bought
them only its credential loading. That part lives here:

  credentials.py  kubeconfig files (contexts, merged $KUBECONFIG lists, inline or file
                  certificates, tokens, token files, basic auth, exec plugins) and the in-cluster
                  ServiceAccount, as one Credentials value; Auth keeps the token and TLS context
                  fresh (exec plugins' expiry, rotated ServiceAccount tokens)
  exec_plugin.py  client.authentication.k8s.io exec plugins (aws eks get-token,
                  gke-gcloud-auth-plugin, kubelogin, ...)
  kinds.py        the kinds llmstage touches and their REST paths
  errors.py       ApiError and ConfigError
  rest.py         a small synchronous client for the CLI (httpx)

The operator's asynchronous client is controller/kube.py, on aiohttp as kopf's own.
"""
