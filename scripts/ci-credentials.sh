#!/usr/bin/env bash
# Subscription credentials and the hub's signing key for a CI job, from the
# repository's secrets.
# RHEL's CDN wants an entitlement certificate and key, SUSE's repositories
# registration credentials; btfhub reads both from files named by
# BTFHUB_RHEL_CERT/_KEY/_CA and BTFHUB_SUSE_USER/_PASSWORD_FILE. This writes
# the secrets given in the environment to owner-only files under $RUNNER_TEMP
# and appends those variables to $GITHUB_ENV for the job's later steps.
# Secrets that are not set are skipped: those releases are then reported as
# "needs credentials" instead of built. HUB_SIGNING_KEY (an armored secret
# key without passphrase) becomes BTFHUB_SIGNING_KEY: index.json is then
# signed into index.json.asc; without it the index is published unsigned.
set -euo pipefail
dir="${RUNNER_TEMP:?}/btfhub-credentials"
mkdir -p "$dir"
chmod 700 "$dir"
umask 077

put() {  # put VARIABLE FILE CONTENT: write CONTENT to FILE, export VARIABLE=FILE
    printf '%s\n' "$3" > "$dir/$2"
    echo "$1=$dir/$2" >> "${GITHUB_ENV:?}"
}

if [ -n "${RHEL_ENTITLEMENT_CERT:-}" ] && [ -n "${RHEL_ENTITLEMENT_KEY:-}" ]; then
    put BTFHUB_RHEL_CERT rhel-entitlement.pem "$RHEL_ENTITLEMENT_CERT"
    put BTFHUB_RHEL_KEY rhel-entitlement-key.pem "$RHEL_ENTITLEMENT_KEY"
    if [ -n "${RHEL_CDN_CA:-}" ]; then
        put BTFHUB_RHEL_CA rhel-cdn-ca.pem "$RHEL_CDN_CA"
    fi
    echo "RHEL entitlement: configured"
else
    echo "RHEL entitlement: not configured (RHEL releases need credentials)"
fi
if [ -n "${SUSE_USER:-}" ] && [ -n "${SUSE_PASSWORD:-}" ]; then
    echo "BTFHUB_SUSE_USER=$SUSE_USER" >> "$GITHUB_ENV"
    put BTFHUB_SUSE_PASSWORD_FILE suse-password "$SUSE_PASSWORD"
    echo "SUSE registration: configured"
else
    echo "SUSE registration: not configured (SLES releases need credentials)"
fi
if [ -n "${HUB_SIGNING_KEY:-}" ]; then
    put BTFHUB_SIGNING_KEY hub-signing-key.asc "$HUB_SIGNING_KEY"
    echo "hub signing key: configured (index.json.asc is written)"
else
    echo "hub signing key: not configured (index.json is published unsigned)"
fi
