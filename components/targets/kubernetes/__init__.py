"""The Kubernetes target: plans as objects (objects.py), the cluster's whole set (cluster.py), Pulumi resources
(resources.py).
"""
