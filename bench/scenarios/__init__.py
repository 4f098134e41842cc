"""The scenarios of ``python -m bench``: each module's ``run(ctx)`` returns its rows."""
