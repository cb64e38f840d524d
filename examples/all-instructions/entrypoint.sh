#!/bin/sh
echo "entrypoint: $*"
cat /opt/app/greeting.txt
