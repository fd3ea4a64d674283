"""`inv maintenance.on/off`: the site behind the maintenance page on purpose (`run`), with the
page of the cutover (`fabfile.cutover.steps`), as an operator's page that outranks the web
routers."""
