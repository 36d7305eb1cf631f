Matrix.Homeserver.Hosting.HangupDisposition.RestoreDefault();
return await Matrix.Homeserver.Hosting.Cli.RunAsync(args);
