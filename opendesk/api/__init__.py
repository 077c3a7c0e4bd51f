"""HTTP routers of the reference service, one module per resource."""
