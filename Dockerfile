# The vdcos operator image: `vdcos run` against the cluster it is deployed in.
# It holds the operator only (controllers/ and the neutral kubekit/); the embedded
# datacenter and `vdcos up` are not in it. tests/test_operator_image.py installs exactly
# what the COPY lines name, without docker, and imports every module of it.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY controllers ./controllers
COPY kubekit ./kubekit
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
COPY --from=build /install /usr/local
# Unprivileged, numeric so runAsNonRoot can verify it.
USER 65532:65532
ENV PYTHONUNBUFFERED=1
EXPOSE 8080 8081
ENTRYPOINT ["vdcos"]
CMD ["run", "--liveness=http://0.0.0.0:8080/healthz", "--log-json"]
