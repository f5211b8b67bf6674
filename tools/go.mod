module github.com/thaloco/banger/tools

go 1.26.8
