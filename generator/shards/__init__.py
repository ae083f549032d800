"""The sharded workflow's files: the split, the manifests, the outcomes and the merge.

- split.py: the missing kernels into N balanced shards (pure);
- manifest.py: the shard manifest a build job writes beside its files;
- outcomes.py: the failed / ships-btf outcomes file merge hands to sync;
- files.py: hashing and walking shard outputs without following symlinks;
- merge.py: the verified, all-or-nothing merge into archive/.
"""
