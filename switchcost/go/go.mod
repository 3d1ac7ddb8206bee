module switchyard/switchcost/go

go 1.19
