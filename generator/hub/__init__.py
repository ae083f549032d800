"""The application layer: what a run of the hub is, with its collaborators passed in.

    run.py      discover -> plan -> build -> record -> render, and the runs the
                commands offer (plan, reconcile, a shard's build, sync's record step)
    build.py    the build step: one function per kernel, a pool of workers
    publish.py  commit and push, re-rendering over a remote that moved on

Typed options in (Selection, ShardId from generator.model; BuildOptions,
ShardJob, PublishOptions here), reports out. The commands parse arguments,
call these and print; nothing here imports argparse or the commands, or
prints (progress and warnings go through a generator.progress.Reporter).
"""
