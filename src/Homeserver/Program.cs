return await Matrix.Homeserver.Hosting.Cli.RunAsync(args);
