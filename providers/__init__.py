"""One module per conversational AI provider, on one plugin contract (`base.py`).

`tap.py` holds the per-session relay rules shared by all of them (Sans-I/O);
`registry.py` lists the providers a gateway serves. Nothing here imports the
gateway: the gateway imports this package.
"""
