"""The team portal: server-rendered pages where team members make, watch, find and pay for
their clips. Views here read through `videos.selectors` / `billing.selectors` and write through
the services, like the API and the admin; they hold no rule of their own."""
