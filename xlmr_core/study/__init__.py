"""Studies: the table of studies (``studies``) and its command line (``cli``, ``xlmr-sweep``), the scales
(``presets``) and sweep grids (``sweeps``, the derived-language ``lab``), jobs on SLURM or locally (``jobs``),
the tidy results table (``results``), scaling-law fits (``laws``, ``lawcli``), figures (``plots``) and the
papermill notebooks that draw them (``notebooks``, the notebooks themselves in ``nb/``).
"""
