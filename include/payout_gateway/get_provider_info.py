def get_provider_info() -> dict:
    return {
        "package-name": "airflow-provider-payout-gateway",
        "name": "Payout Gateway",
        "description": "x",
        "versions": ["0.1.0"],
    }
