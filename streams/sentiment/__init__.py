"""Sentiment: ``layout`` (where a prepared model lives), ``classify`` (the runtime), ``build`` (the offline
export, which needs the ``model`` extra). The runtime never imports the build tool."""
