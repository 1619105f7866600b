using System.CommandLine;

namespace RnnSimd.Cli;

internal static partial class Commands
{
    static partial void AddTrainingCommands(RootCommand root, TextWriter o, TextWriter e)
    {
        var demo = new Command("demo", "Kernel self-check (the training demo replaces it).");
        demo.SetAction(_ => SelfCheck.Run(o));
        root.Subcommands.Add(demo);
    }
}
