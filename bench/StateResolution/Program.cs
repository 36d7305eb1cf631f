using System.Diagnostics;
using System.Runtime.InteropServices;
using Matrix.Bench.StateResolution;
using Matrix.Federation.Rooms;
using Matrix.Federation.Events;
using Matrix.Federation.StateResolution;

// State resolution benchmark: resolves two forks of a large room and prints the time per run.
// Usage: dotnet run -c Release --project bench/StateResolution [-- --chain 50000 --conflicted 1000,10000 --runs 5]
var chain = 50_000;
var conflictedSizes = new[] { 1_000, 10_000 };
var runs = 5;
for (var i = 0; i + 1 < args.Length; i += 2)
{
    switch (args[i])
    {
        case "--chain": chain = int.Parse(args[i + 1]); break;
        case "--conflicted": conflictedSizes = args[i + 1].Split(',').Select(int.Parse).ToArray(); break;
        case "--runs": runs = int.Parse(args[i + 1]); break;
        default: throw new ArgumentException($"unknown option {args[i]}");
    }
}

Console.WriteLine($"machine: {Environment.ProcessorCount} cores, {RuntimeInformation.OSDescription}, {RuntimeInformation.FrameworkDescription}, {RuntimeInformation.ProcessArchitecture}");
Console.WriteLine($"auth chain ~{chain:N0} events; {runs} runs each (after one warm-up); times in ms");
Console.WriteLine();
Console.WriteLine($"{"room version",-13} {"algorithm",-10} {"conflicted",10} {"resolved keys",14} {"min",9} {"median",9} {"max",9}");

foreach (var version in new[] { RoomVersions.V11, RoomVersions.V12 })
    foreach (var conflicted in conflictedSizes)
    {
        var room = new SyntheticRoom(version);
        room.Grow(chain);
        var (a, b) = room.Fork(conflicted);
        IReadOnlyDictionary<StateKey, string>[] states = [a, b];
        var resolved = StateResolver.Resolve(version, room.RoomId, states, room.Graph);
        var times = new List<double>();
        for (var run = 0; run < runs; run++)
        {
            var watch = Stopwatch.StartNew();
            resolved = StateResolver.Resolve(version, room.RoomId, states, room.Graph);
            times.Add(watch.Elapsed.TotalMilliseconds);
        }
        times.Sort();
        Console.WriteLine($"{version.Id,-13} {version.StateResolution,-10} {conflicted,10:N0} {resolved.Count,14:N0} {times[0],9:F1} {times[times.Count / 2],9:F1} {times[^1],9:F1}");
    }
