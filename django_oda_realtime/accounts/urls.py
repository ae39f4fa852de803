"""HTTP endpoints of the add-on: JWT obtain and refresh (simplejwt, with revocation checked), logout."""
from django.urls import path

from .views import LoginView, LogoutView, RefreshView

urlpatterns = [
    path("token/", LoginView.as_view(), name="token_obtain_pair"),
    path("token/refresh/", RefreshView.as_view(), name="token_refresh"),
    path("logout/", LogoutView.as_view(), name="logout"),
]
