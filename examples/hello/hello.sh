#!/bin/sh
echo "Hello from kiln! This container runs $(cat /etc/built-on)."
