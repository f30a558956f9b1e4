// Starts Swagger UI on /docs. A file, not an inline script: the page's Content-Security-Policy
// runs scripts from the gateway's own origin only.
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");

  window.ui = SwaggerUIBundle({
    url: root.dataset.openapiUrl,
    domNode: root,
    deepLinking: true,
    // Swagger UI's default validator badge would send the document to validator.swagger.io.
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });

  // One line per served model: links to its architecture diagram and layer summary.
  function listArchitectureLinks(body) {
    var list = document.getElementById("architecture-links");
    (body.models || []).forEach(function (model) {
      var item = document.createElement("li");
      var base = "v1/models/" + encodeURIComponent(model.name) + "/architecture.";
      item.appendChild(document.createTextNode(model.name + ": "));
      [["png", "diagram (PNG)"], ["txt", "layer summary (text)"]].forEach(function (link, index) {
        var anchor = document.createElement("a");
        anchor.href = base + link[0];
        anchor.textContent = link[1];
        if (index > 0) item.appendChild(document.createTextNode(", "));
        item.appendChild(anchor);
      });
      list.appendChild(item);
    });
  }

  fetch(root.dataset.modelsUrl)
    .then(function (response) { return response.ok ? response.json() : {}; })
    .then(listArchitectureLinks)
    .catch(function () { /* no links: the header still names the endpoints */ });
})();
