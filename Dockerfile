# tokenboard for a team. Slim Python, a non-root user, no secrets inside: configuration and
# secrets arrive when the container starts, as TOKENBOARD_* environment variables (sign-in as
# TOKENBOARD_AUTH_*) or a mounted secrets file. README: "Deploying for a team".
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORT=8501 \
    TOKENBOARD_DATA_DIR=/data

WORKDIR /app
COPY requirements.txt ./
RUN pip install -r requirements.txt \
 && useradd --system --uid 10001 --create-home --shell /usr/sbin/nologin tokenboard \
 && mkdir /data && chown tokenboard /data
# The code is root's and read-only to the app; .dockerignore keeps secrets and local data out.
COPY . .

USER tokenboard
EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/_stcore/health' % os.environ.get('PORT', '8501'), timeout=4)"]
# The same script the tests start (tests/test_serve.py, tests/pages/test_sign_in_browser.py):
# every interface, and it refuses to start without sign-in unless allow_anonymous = true.
CMD ["scripts/serve"]
