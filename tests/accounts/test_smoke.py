"""The whole login journey works over HTTP on both engines."""

from tests.conftest import login, make_user


def test_enrolled_user_logs_in_with_password_and_totp_and_sees_start_page(app, client, clock):
    member = make_user(app, role="coordinator")
    login(client, member, clock)
    page = client.get("/")
    assert page.status_code == 200
    assert member.username in page.get_data(as_text=True)
