# The vdcos operator image: `vdcos run` against the cluster it is deployed in.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY controllers ./controllers
COPY devcluster ./devcluster
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
COPY --from=build /install /usr/local
# Unprivileged, numeric so runAsNonRoot can verify it.
USER 65532:65532
ENV PYTHONUNBUFFERED=1
EXPOSE 8080
ENTRYPOINT ["vdcos"]
CMD ["run", "--liveness=http://0.0.0.0:8080/healthz", "--log-json"]
