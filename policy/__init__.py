"""The Pulumi policy pack (`pulumi preview --policy-pack policy`); a package so that tests and mypy can import
`policy.__main__` without starting the pack's server."""
