module switchyard/servers/go

go 1.19
