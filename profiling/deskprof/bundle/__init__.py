"""The capture bundle contract, once: what a bundle directory holds and how it is written
and read.

- :mod:`deskprof.bundle.schema`: tables and columns (standard library only: the probe
  inside the target imports it);
- :mod:`deskprof.bundle.manifest`: the typed ``manifest.json``;
- :mod:`deskprof.bundle.frames`: the one frame-label format (``function (file:line)``);
- :mod:`deskprof.bundle.stacks`: stacks stored as frame ids into a ``frames`` table;
- :mod:`deskprof.bundle.writer`: writing a bundle while a capture runs;
- :mod:`deskprof.bundle.reader`: ``open_capture`` and :class:`Capture`, the one way later
  stages read a bundle;
- :mod:`deskprof.bundle.experiment`: the experiment result format beside the capture's.

No module outside this package opens a bundle's files. Nothing is imported here so the
probe's ``import deskprof.bundle.schema`` stays free of pandas and pyarrow.
"""
