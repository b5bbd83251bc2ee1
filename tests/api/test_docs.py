from tests.conftest import Api


def test_docs_are_served_without_a_cdn(api: Api) -> None:
    page = api.client.get("/docs")
    assert page.status_code == 200
    assert "/docs-assets/swagger-ui-bundle.js" in page.text
    assert "cdn" not in page.text.lower()
    bundle = api.client.get("/docs-assets/swagger-ui-bundle.js")
    assert bundle.status_code == 200
    assert "SwaggerUIBundle" in bundle.text[:2000]
