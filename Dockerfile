# movie-gen: one image for the web app (default command), the Celery worker and Flower.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONPATH=/app \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

RUN useradd --create-home --uid 10001 --user-group app \
 && mkdir -p /data/output \
 && chown app:app /data/output

# Dependencies in their own layer: it is rebuilt only when requirements.txt changes.
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
# Installs the `movie-gen` console script once the project has a pyproject.toml; the code itself
# runs from /app through PYTHONPATH either way.
RUN if [ -f pyproject.toml ]; then pip install --no-deps . && rm -rf build *.egg-info; fi

# An empty named volume mounted here starts with this directory's owner: the app user can write.
ENV OUTPUT_ROOT=/data/output

USER app
EXPOSE 8000 5555
CMD ["gunicorn", "--config=python:movie_gen.config.gunicorn_conf", "--bind=0.0.0.0:8000", \
     "--access-logfile=-", "movie_gen:create_app()"]
