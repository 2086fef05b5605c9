#include "server.h"

#include "options.h"

#include <cstdlib>
#include <cstring>

#include <httplib.h>

#include "connections.h"
#include "datasets.h"
#include "events.h"
#include "gallery.h"
#include "generation.h"
#include "request.h"
#include "rules.h"
#include "strings.h"
#include "studio.h"
#include "training.h"

extern "C" const unsigned char bioesp_studio_index_html[], bioesp_studio_app_js[], bioesp_studio_style_css[];
extern "C" const size_t bioesp_studio_index_html_size, bioesp_studio_app_js_size, bioesp_studio_style_css_size;

namespace studio {
namespace {

using httplib::Request;
using httplib::Response;
using Handled = httplib::Server::HandlerResponse;

// httplib's parsing, routing and answers, for requests the connections have read whole.
class Routes : public httplib::Server {
 public:
  void serve(httplib::Stream& stream, bool last, bool* close) {
    bool closed = false;
    *close = !process_request(stream, last, closed, nullptr) || closed;
  }
};

void reply(Response& res, const json& j, int status = 200) {
  res.status = status;
  res.set_header("Cache-Control", "no-store");
  res.set_content(json_text(j), "application/json");
}

void reply_error(Response& res, int status, const std::string& message) { reply(res, json{{"error", message}}, status); }

// A handler whose errors become answers: HttpError's status and message, else 500.
template <typename F>
httplib::Server::Handler guarded(F f) {
  return [f](const Request& req, Response& res) {
    use_language(req.get_header_value("X-Bioesp-Lang"));
    try {
      f(req, res);
    } catch (const HttpError& e) {
      reply_error(res, e.status, e.what());
    } catch (const std::exception& e) {
      reply_error(res, 500, e.what());
    }
  };
}

void serve_asset(Routes& svr, const char* path, const char* data, size_t size, const char* type) {
  svr.Get(path, [=](const Request&, Response& res) {
    res.set_header("Cache-Control", "no-cache");
    if (std::strncmp(type, "text/html", 9) == 0)
      res.set_header("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; object-src 'none'; frame-ancestors 'none'");
    res.set_content(data, size, type);
  });
}

const char* text(const unsigned char* data) { return reinterpret_cast<const char*>(data); }

}  // namespace

struct Server::Impl {
  Parts p;
  Routes routes;
  Connections connections;
  int port = 0;

  explicit Impl(Parts parts)
      : p(parts),
        connections([this](httplib::Stream& s, bool last, bool* close) { routes.serve(s, last, close); },
                    [this](uint64_t* after, size_t budget) { return p.bus.since(after, budget); }) {
    p.bus.on_publish([this] { connections.wake(); });
    routes.set_payload_max_length(rules::max_body);
    routes.set_keep_alive_max_count(rules::keep_alive_requests);  // what the Keep-Alive header says
    routes.set_keep_alive_timeout(rules::request_seconds);
    routes.set_pre_routing_handler([this](const Request& req, Response& res) { return screen(req, res); });
    add_routes();
  }

  // Loopback-only studios answer only to loopback names; POSTs must be JSON from this origin.
  Handled screen(const Request& req, Response& res) {
    use_language(req.get_header_value("X-Bioesp-Lang"));
    if (req.get_header_value_count("Host") != 1) {
      reply_error(res, 400, say("one_host"));
      return Handled::Handled;
    }
    const std::string host = req.get_header_value("Host");
    if (!p.cfg.remote) {
      const std::string at = ":" + std::to_string(port);
      const bool bare = port == 80 && (host == "127.0.0.1" || host == "localhost" || host == "[::1]");
      if (!bare && host != "127.0.0.1" + at && host != "localhost" + at && host != "[::1]" + at) {
        reply_error(res, 403, say("only_loopback"));
        return Handled::Handled;
      }
    }
    if (req.method == "POST" || req.method == "DELETE") {
      const std::string origin = req.get_header_value("Origin");
      if (!origin.empty() && origin != "http://" + host) {
        reply_error(res, 403, say("other_site"));
        return Handled::Handled;
      }
      if (req.method == "POST" && req.get_header_value("Content-Type").rfind("application/json", 0) != 0) {
        reply_error(res, 415, say("send_json"));
        return Handled::Handled;
      }
    }
    res.set_header("X-Content-Type-Options", "nosniff");
    res.set_header("Referrer-Policy", "no-referrer");
    return Handled::Unhandled;
  }

  json info() {
    json skipped = json::array(), loras = json::array();
    for (const auto& lora : p.generation.loras(skipped)) loras.push_back(lora.first);
    const Embeddings& embeddings = p.generation.embeddings();
    for (const auto& e : embeddings.skipped) skipped.push_back(e);
    json controlnets = json::array();
    for (const auto& net : p.generation.controlnets().nets) controlnets.push_back(net.first);
    for (const auto& e : p.generation.controlnets().skipped) skipped.push_back(e);
    const std::string training = p.training.running();
    return json{{"version", bioesp_version_string()},
                {"model", p.cfg.model},
                {"native_size", p.cfg.native_size},
                {"loras", loras},
                {"embeddings", embeddings.tokens},
                {"controlnets", controlnets},
                {"lang", p.cfg.lang},
                {"event", p.bus.last()},
                {"running", p.generation.running()},
                {"training", training.empty() ? json(nullptr) : json(training)},
                {"skipped", skipped}};
  }

  // Follows the event log from ?after=N (or Last-Event-ID after a reconnect).
  void events(const Request& req, Response& res) {
    uint64_t after = p.bus.last();
    std::string from = req.get_header_value("Last-Event-ID");
    if (from.empty() && req.has_param("after")) from = req.get_param_value("after");
    if (!from.empty()) after = std::strtoull(from.c_str(), nullptr, 10);
    if (!Connections::follow_events(after))
      throw HttpError(503, say("too_many_streams", {{"max", std::to_string(rules::max_event_streams)}}));
    res.set_header("Cache-Control", "no-store");
    // Only the head is written here (a provider without a length: no Content-Length, the stream
    // ends with the connection); the connections send the events.
    res.set_content_provider("text/event-stream", [](size_t, httplib::DataSink& sink) {
      sink.done();
      return true;
    });
  }

  void file(const Request& req, Response& res) {
    const std::string area = req.matches[1];
    const fs::path root = area == "gallery" ? p.gallery.dir() : area == "datasets" ? p.cfg.datasets : p.cfg.trainings;
    const fs::path f = confined(root, req.matches[2]);
    std::error_code ec;
    if (f.empty() || !media_type(f) || !fs::is_regular_file(f, ec)) throw HttpError(404, say("no_such_picture"));
    const uintmax_t size = fs::file_size(f, ec);
    if (ec || Connections::unsent() + size > rules::max_unsent) throw HttpError(503, say("busy_answers"));
    res.set_header("Cache-Control", "no-cache");
    res.set_content(read_file(f), media_type(f));
  }

  void add_routes() {
    auto& r = routes;
    serve_asset(r, "/", text(bioesp_studio_index_html), bioesp_studio_index_html_size, "text/html; charset=utf-8");
    serve_asset(r, "/app.js", text(bioesp_studio_app_js), bioesp_studio_app_js_size, "text/javascript; charset=utf-8");
    serve_asset(r, "/style.css", text(bioesp_studio_style_css), bioesp_studio_style_css_size, "text/css; charset=utf-8");
    for (const bool es : {false, true}) {
      const std::string& words = strings_json(es);
      serve_asset(r, es ? "/strings.es.json" : "/strings.en.json", words.data(), words.size(), "application/json");
    }
    r.Get("/api/info", guarded([this](const Request&, Response& res) { reply(res, info()); }));
    r.Get("/api/options", guarded([this](const Request&, Response& res) { reply(res, options_listing()); }));
    r.Get("/api/events", guarded([this](const Request& req, Response& res) { events(req, res); }));
    r.Get(R"(/files/(gallery|datasets|trainings)/(.+))", guarded([this](const Request& req, Response& res) { file(req, res); }));

    r.Post("/api/generate", guarded([this](const Request& req, Response& res) {
      reply(res, json{{"id", p.generation.generate(body_of(req.body))}}, 202);
    }));
    r.Post("/api/animate", guarded([this](const Request& req, Response& res) {
      reply(res, json{{"id", p.generation.animate(body_of(req.body))}}, 202);
    }));
    r.Get(R"(/api/jobs/([A-Za-z0-9-]+)/preview)", guarded([this](const Request& req, Response& res) {
      res.set_header("Cache-Control", "no-store");
      res.set_content(p.generation.preview(req.matches[1]), "image/png");
    }));
    r.Post(R"(/api/jobs/([A-Za-z0-9-]+)/cancel)", guarded([this](const Request& req, Response& res) {
      p.generation.cancel(req.matches[1]);
      reply(res, json{{"ok", true}});
    }));

    r.Get("/api/gallery", guarded([this](const Request&, Response& res) { reply(res, p.gallery.pictures()); }));
    r.Delete(R"(/api/gallery/([^/]+))", guarded([this](const Request& req, Response& res) {
      p.gallery.remove_picture(req.matches[1]);
      reply(res, json{{"ok", true}});
    }));
    r.Get("/api/animations", guarded([this](const Request&, Response& res) { reply(res, p.gallery.animations()); }));
    r.Delete(R"(/api/animations/([^/]+))", guarded([this](const Request& req, Response& res) {
      p.gallery.remove_animation(req.matches[1]);
      reply(res, json{{"ok", true}});
    }));

    r.Get("/api/datasets", guarded([this](const Request&, Response& res) { reply(res, p.datasets.list()); }));
    r.Get(R"(/api/datasets/([^/]+))", guarded([this](const Request& req, Response& res) { reply(res, p.datasets.one(req.matches[1])); }));
    r.Post("/api/datasets/fetch", guarded([this](const Request& req, Response& res) {
      reply(res, json{{"name", p.datasets.fetch(body_of(req.body))}}, 202);
    }));
    r.Post("/api/datasets/fetch/cancel", guarded([this](const Request&, Response& res) {
      p.datasets.cancel();
      reply(res, json{{"ok", true}});
    }));

    r.Get("/api/trainings", guarded([this](const Request&, Response& res) { reply(res, p.training.list()); }));
    r.Get(R"(/api/trainings/([^/]+))", guarded([this](const Request& req, Response& res) { reply(res, p.training.one(req.matches[1])); }));
    r.Post("/api/train", guarded([this](const Request& req, Response& res) {
      reply(res, json{{"name", p.training.start(body_of(req.body))}}, 202);
    }));
    r.Post("/api/train/cancel", guarded([this](const Request&, Response& res) {
      p.training.cancel();
      reply(res, json{{"ok", true}});
    }));
  }
};

Server::Server(Parts parts) : impl_(std::make_unique<Impl>(parts)) {}
Server::~Server() { impl_->p.bus.on_publish(nullptr); }  // the parts outlive the connections

int Server::bind() { return impl_->port = impl_->connections.bind(impl_->p.cfg.host, impl_->p.cfg.port); }
void Server::run() { impl_->connections.run(); }
void Server::stop() { impl_->connections.stop(); }

}  // namespace studio
