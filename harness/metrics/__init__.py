"""Live metrics of a running swarm for Prometheus (``store-harness swarm --prometheus PORT``).

* :mod:`~harness.metrics.exposition`: every series, declared once, and the text format;
* :mod:`~harness.metrics.collect`: each process's figures and the run's sum of them;
* :mod:`~harness.metrics.server`: ``/metrics`` on gevent's WSGI server.

The locust wiring is :mod:`harness.swarm.prometheus`; the Grafana dashboard that reads
these series is ``dashboards/store-harness.json``.
"""
