-- MLflow's tracking store lives beside the control plane's database, in its own database.
CREATE DATABASE mlflow OWNER controlplane;
