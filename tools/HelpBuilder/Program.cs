using System.Text;
using HelpBuilder;

// Usage: HelpBuilder --docs <folder with *.md> --out <en-US folder> --assembly <AssemblyName>
var options = ParseArguments(args);
if (!options.TryGetValue("docs", out var docs) || !options.TryGetValue("out", out var output) || !options.TryGetValue("assembly", out var assembly))
{
    Console.Error.WriteLine("usage: HelpBuilder --docs <folder> --out <en-US folder> --assembly <AssemblyName>");
    return 2;
}

try
{
    Directory.CreateDirectory(output);
    var pages = Directory.GetFiles(docs, "*.md").OrderBy(p => p, StringComparer.Ordinal).ToList();
    var commands = pages.Where(p => !MarkdownHelpReader.IsAboutTopic(p)).Select(MarkdownHelpReader.ReadCommand).ToList();
    var maml = MamlWriter.Write(commands);
    var mamlPath = Path.Combine(output, assembly + ".dll-Help.xml");
    using (var writer = new StreamWriter(mamlPath, false, new UTF8Encoding(false)))
    {
        maml.Save(writer);
    }
    Console.WriteLine($"HelpBuilder: {commands.Count} cmdlet pages -> {mamlPath}");

    foreach (var aboutPage in pages.Where(MarkdownHelpReader.IsAboutTopic))
    {
        var topic = MarkdownHelpReader.ReadAbout(aboutPage);
        var aboutPath = Path.Combine(output, topic.Name + ".help.txt");
        File.WriteAllText(aboutPath, AboutTopicWriter.Write(topic), new UTF8Encoding(false));
        Console.WriteLine($"HelpBuilder: {Path.GetFileName(aboutPage)} -> {aboutPath}");
    }
    return 0;
}
catch (Exception ex) when (ex is IOException or InvalidDataException or UnauthorizedAccessException)
{
    Console.Error.WriteLine($"HelpBuilder: error: {ex.Message}");
    return 1;
}

static Dictionary<string, string> ParseArguments(string[] args)
{
    var result = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
    for (var i = 0; i + 1 < args.Length; i += 2)
    {
        if (args[i].StartsWith("--", StringComparison.Ordinal)) result[args[i][2..]] = args[i + 1];
    }
    return result;
}
