"""The service layer: what handlers call. Each call is one transaction."""
