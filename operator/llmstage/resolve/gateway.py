"""The gateway's image (render/gateway.py builds the container): pinned like the runtimes'.

nginx's unprivileged build from nginxinc/docker-nginx-unprivileged, mainline/debian/Dockerfile:
nginx 1.27.4 on debian:bookworm-slim, USER 101, ENTRYPOINT /docker-entrypoint.sh, pid file and
temp paths under /tmp, /bin/sh present. The pod overrides the command and the user.
"""

from __future__ import annotations

DEFAULT_GATEWAY_IMAGE = "nginxinc/nginx-unprivileged:1.27.4"
