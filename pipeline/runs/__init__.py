"""One-off runs (`temps run`): a command in a new container of the live release's image, with
its environment, volumes and limits, never routed, attached to the client that asked.

    asked  (POST)    checked, held against the app's limit, recorded as pending
    attach (socket)  the container is created, attached, started; output streams to the client
    end              it exits, times out, or its client leaves: removed, recorded, let go

`asked` checks the request, `inflight` holds the app's runs against its limit, `oneoff` is
the story, step by step.
"""
