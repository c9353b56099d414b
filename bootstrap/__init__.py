"""Packaging and provisioning of the lab's two topologies on LocalStack (`python -m bootstrap`).

`bootstrap.provision.provision_all` and `bootstrap.teardown.teardown_all` are what `make up` and
`make down` call; `bootstrap/README.md` documents the steps and `.lab/endpoints.json`.
"""
