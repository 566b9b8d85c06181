import Foundation
import Testing
import WeightStore
@testable import Models

/// Chat templates against transformers' own Jinja environment
/// (tools/fixtures/make_template_fixtures.py wrote Tests/Fixtures/chat_templates): SmolLM2's,
/// a Llama 3 style, a Mistral style that raises on roles out of order, and one that uses
/// every construct the renderer claims.
struct ChatTemplateTests {
    @Test func rendersAsTransformersDoes() throws {
        let fixture = Fixtures.json("chat_templates/rendered.json")
        let templates = try #require(fixture["templates"]?.pairs)
        var parsed: [String: ChatTemplate] = [:]
        for (name, source) in templates { parsed[name] = try ChatTemplate(source.string!) }
        let cases = try #require(fixture["cases"]?.array)
        #expect(cases.count == 32)
        for c in cases {
            let template = try #require(parsed[c["template"]!.string!])
            let label = "\(c["template"]!.string!)/\(c["conversation"]!.string!)"
            let context = try #require(c["context"]?.pairs)
            if let message = c["error"]?.string {
                #expect(throws: ChatTemplateError.raised(message), "\(label)") { try template.render(context: context) }
            } else {
                let text = try template.render(context: context)
                #expect(text == c["text"]!.string!, "\(label): \(text.debugDescription)")
            }
        }
    }

    @Test func chatMessagesRenderTheSmolLM2Prompt() throws {
        let fixture = Fixtures.json("chat_templates/rendered.json")
        let template = try ChatTemplate(fixture["templates"]!["smollm2"]!.string!)
        let text = try template.render(messages: [ChatMessage(role: "user", content: "Hi")])
        #expect(text == "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    }

    @Test(arguments: [
        ("{% macro m() %}x{% endmacro %}", "chat template line 1: the 'macro' statement is not supported by wpack's template renderer"),
        ("{{ x | wordcount }}", "chat template line 1: the filter 'wordcount' is not supported by wpack's template renderer"),
        ("{{ 3 is prime }}", "chat template line 1: the test 'prime' is not supported by wpack's template renderer"),
        ("a\n{% if x %}", "chat template line 2: the template ends before its 'elif'"),
        ("{% endfor %}", "chat template line 1: 'endfor' without an opening tag"),
        ("{{ 'open }}", "chat template line 1: a string literal is never closed"),
        ("{{ x", "chat template line 1: a tag opened here is never closed"),
        ("{% frobnicate %}", "chat template line 1: unknown statement 'frobnicate'"),
        ("{{ (1, 2) }}", "chat template line 1: a tuple expression is not supported by wpack's template renderer"),
        ("{{ 1 + }}", "chat template line 1: an expression is missing at the end of the tag"),
    ])
    func refusesWhatItDoesNotImplement(source: String, message: String) {
        do {
            let t = try ChatTemplate(source)
            _ = try t.render(context: [])
            Issue.record("\(source.debugDescription) rendered")
        } catch {
            #expect("\(error)" == message)
        }
    }

    @Test func hostileTemplatesEndWithAnError() {
        let cases = [
            "{% for i in range(100000000) %}x{% endfor %}",
            "{% for i in range(1000) %}{% for j in range(1000) %}{% for k in range(1000) %}{% endfor %}{% endfor %}{% endfor %}",
            "{% set s = 'x' * 10000000 %}{% for i in range(100) %}{{ s }}{% endfor %}",
            String(repeating: "{% if true %}", count: 500),
            "{{ " + String(repeating: "(", count: 1000) + "1" + String(repeating: ")", count: 1000) + " }}",
            "{{ 1 // 0 }}",
        ]
        for source in cases {
            #expect(throws: ChatTemplateError.self, "\(source.prefix(60))") { try ChatTemplate(source).render(context: []) }
        }
    }

    @Test func renderErrorsNameTheLine() {
        #expect(throws: ChatTemplateError.render(line: 3, "'x' of an undefined value")) {
            try ChatTemplate("a\nb\n{{ missing.x }}").render(context: [])
        }
        #expect(throws: ChatTemplateError.render(line: 1, "'set ns.a' needs 'ns' to be a namespace()")) {
            try ChatTemplate("{% set ns.a = 1 %}").render(context: [])
        }
    }
}
