"""The kind cluster of `make e2e-kind` (hack/e2e_kind.py): the Docker engine it runs on, the node
image and the images it loads, built here when no public registry answers, and the check that
`down` left nothing behind.

  config.py            names, paths, what this machine needs (detected), the kind config
  engine.py            the machine's Docker engine, or a private dockerd in its own namespaces
  runc-wrapper         dockerd's runtime where the capability bounding set is short
  base_image.py        kind's base image from a debootstrapped Debian root
  component_images.py  the control plane's, etcd's, CoreDNS's, kindnetd's ... images
  node_image.py        `kind build node-image` from them, cached per machine
  archive.py           docker-save archives written from hack/images.py's OCI layouts
  host.py              the host before and after: what `down` restores and checks
  procs.py             pid files and logs of the processes it starts

Standard library only, like hack/cluster.py.
"""

from __future__ import annotations

import images


def register_images() -> None:
    """Add the kind images to hack/images.py's table, so its cache and keys serve them."""
    from kindcluster import base_image, component_images

    for img in [base_image.KindBase(), *component_images.images()]:
        images.IMAGES.setdefault(img.name, img)
