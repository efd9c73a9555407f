"""Sign-in with the company's identity provider (OpenID Connect), issue 15."""
