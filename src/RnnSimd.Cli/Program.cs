using RnnSimd.Cli;

return Commands.Run(args);
