"""Builders: a Dockerfile of temps' own for a commit that has none.

    detect.plan_for    the commit's stack, found by the files at its root, and its Dockerfile
    source             what detection reads of a commit (its root, a few manifests)
    images             the base image of each stack: temps.toml, then the daemon, then ours
    python, node, go, static   one module per stack: its files, its manifest, its template
    render             the Jinja2 templates in templates/, one per stack

A Dockerfile in the repository always wins; without one, the first stack whose files are at
the root builds it (Python, Node, Go, then a static site), and a repository that matches
none is refused with the list of what is looked for. The Dockerfile is shown to the pusher
and by `temps build show`, so it can be ejected into the repository and edited.
"""
