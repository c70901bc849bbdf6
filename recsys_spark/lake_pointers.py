"""The lake's pointers, for versioned publication (``recsys_spark/publication.py``): folder listings, small
files replaced in one rename, and a folder name that shows another folder's files (a symlink on a local
lake, a swapped-in copy elsewhere). Part of :class:`~recsys_spark.lake.Lake`, whose Hadoop FileSystem
(``_fs``, ``_Path``, ``_jvm``), paths and text I/O it uses.
"""

from __future__ import annotations

import os
import uuid
from typing import List, Optional

from recsys_spark.errors import UserError

STAGING = "_staging"


class Pointers:
    """Mixed into :class:`~recsys_spark.lake.Lake`."""

    def list_names(self, path: str) -> List[str]:
        """The entries of a folder (files and folders), sorted; [] when it does not exist."""
        if not self.exists(path):
            return []
        return sorted(status.getPath().getName() for status in self._fs.listStatus(self._Path(path)))

    def write_text_atomic(self, path: str, text: str) -> None:
        """Replaces the small file ``path`` in one rename: a reader sees the old text or the new, whole."""
        parent, name = path.rsplit("/", 1)
        temporary = f"{parent}/_tmp-{name}-{uuid.uuid4().hex[:12]}"
        self.write_text(temporary, text)
        if self.is_local:
            os.replace(self.local_path(temporary), self.local_path(path))
            return
        # FileContext's rename with OVERWRITE is one atomic rename on HDFS.
        jvm = self._jvm
        context = jvm.org.apache.hadoop.fs.FileContext.getFileContext(
            self._fs.getUri(), self.spark.sparkContext._jsc.hadoopConfiguration())
        options = self.spark.sparkContext._gateway.new_array(jvm.org.apache.hadoop.fs.Options.Rename, 1)
        options[0] = jvm.org.apache.hadoop.fs.Options.Rename.OVERWRITE
        context.rename(self._Path(temporary), self._Path(path), options)

    def point(self, link: str, target: str) -> None:
        """Makes the folder ``link`` show ``target``'s files. On a local lake ``link`` is a relative symlink
        replaced in one rename, so it is never absent and never mixed. Other filesystems have no symlinks:
        there a copy of ``target`` is swapped in with two renames (absent for that instant; readers there
        follow the manifest instead)."""
        if self.is_local:
            local_link, local_target = self.local_path(link), self.local_path(target)
            parent = os.path.dirname(local_link)
            if os.path.isdir(local_link) and not os.path.islink(local_link):
                raise UserError(f"{link} is a folder, not the pointer this table's publication keeps; move it "
                                f"aside (it is an unversioned copy) and re-run")
            temporary = os.path.join(parent, f"_tmp-link-{uuid.uuid4().hex[:12]}")
            os.symlink(os.path.relpath(local_target, parent), temporary)
            os.replace(temporary, local_link)
            return
        staging = f"{os.path.dirname(link)}/{STAGING}/{os.path.basename(link)}-{uuid.uuid4().hex[:12]}"
        util = self._jvm.org.apache.hadoop.fs.FileUtil
        util.copy(self._fs, self._Path(target), self._fs, self._Path(staging), False,
                  self.spark.sparkContext._jsc.hadoopConfiguration())
        self._swap_in(staging, link)

    def age_s(self, path: str) -> float:
        """Seconds since ``path`` (or what a link points at) was modified; infinity when it cannot be read."""
        import time

        try:
            return time.time() - self._fs.getFileStatus(self._Path(path)).getModificationTime() / 1000.0
        except Exception:  # a dangling link or a vanished file: nothing depends on it
            return float("inf")

    def pointed_at(self, link: str) -> Optional[str]:
        """The folder a local pointer shows (absolute), or None."""
        local = self.local_path(link) if self.is_local else None
        return os.path.realpath(local) if local and os.path.islink(local) else None
