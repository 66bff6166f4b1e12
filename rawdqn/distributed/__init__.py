"""Training across processes and machines on Ray core (pip install "rawdqn[distributed]").

rawdqn/distributed/apex.py is Ape-X DQN (Horgan et al. 2018): Ray actors generate experience,
this process's learner owns the prioritized replay on its device and the one training loop
(rawdqn/train.py's drive). Ray is imported only when a distributed run starts.
"""
