// Reelforge portal: the little that runs in the browser. Everything works without it; this
// only tells people sooner what the server would say.
(function () {
  "use strict";
  var IMAGE_TYPES = ["image/jpeg", "image/png", "image/webp"];

  function setUp(root) {
    root.querySelectorAll("[data-count-for]").forEach(function (counter) {
      var field = document.getElementById(counter.dataset.countFor);
      if (!field || counter.dataset.ready) return;
      counter.dataset.ready = "1";
      var max = parseInt(counter.dataset.max, 10);
      var show = function () {
        var used = field.value.length;
        counter.textContent = used + " / " + max;
        counter.classList.toggle("over", used > max);
      };
      field.addEventListener("input", show);
      show();
    });

    root.querySelectorAll("input[type=file][data-max-bytes]").forEach(function (input) {
      if (input.dataset.ready) return;
      input.dataset.ready = "1";
      var preview = document.getElementById(input.dataset.preview);
      var problem = document.getElementById(input.dataset.problem);
      input.addEventListener("change", function () {
        var file = input.files && input.files[0];
        var message = "";
        if (file && IMAGE_TYPES.indexOf(file.type) < 0) {
          message = "Choose a JPEG, PNG or WebP image.";
        } else if (file && file.size > parseInt(input.dataset.maxBytes, 10)) {
          message = "The image is larger than 10 MB.";
        }
        input.setCustomValidity(message);
        if (problem) { problem.textContent = message; problem.hidden = !message; }
        if (preview) {
          preview.innerHTML = "";
          if (file && !message) {
            var img = document.createElement("img");
            img.alt = "Preview of the chosen image";
            img.src = URL.createObjectURL(file);
            preview.appendChild(img);
          }
        }
      });
    });

    root.querySelectorAll("[data-kind-switch]").forEach(function (form) {
      if (form.dataset.ready) return;
      form.dataset.ready = "1";
      var apply = function () {
        var checked = form.querySelector("input[name=kind]:checked");
        var kind = checked ? checked.value : "text_to_video";
        form.querySelectorAll("[data-only]").forEach(function (part) {
          part.hidden = part.dataset.only !== kind;
        });
      };
      form.addEventListener("change", apply);
      apply();
    });
  }

  // Listened for on the document, so forms that htmx swaps in later are covered too.
  // A form that asks first: data-confirm="the question".
  document.addEventListener("submit", function (event) {
    var question = event.target.dataset.confirm;
    if (question && !window.confirm(question)) event.preventDefault();
  });
  // A select that sends its form as soon as it changes (the team switcher).
  document.addEventListener("change", function (event) {
    if (event.target.matches("[data-submit-on-change]")) event.target.form.submit();
  });

  document.addEventListener("DOMContentLoaded", function () { setUp(document); });
  document.addEventListener("htmx:afterSettle", function (event) { setUp(event.target); });
})();
