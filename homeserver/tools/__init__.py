"""Admin tools that look at a whole deployment: the `homeserver` command (`routes`,
`check-config`) and `synctl`."""
