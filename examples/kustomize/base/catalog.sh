#!/bin/sh
# A CGI script: the catalog as JSON, with the stage its settings name.
echo "Content-Type: application/json"
echo
echo "{\"stage\": \"$STAGE\", \"items\": [\"rope\", \"cleat\", \"keel\"], \"pod\": \"$HOSTNAME\"}"
